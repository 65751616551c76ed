"""Write ``docs/api.md``, the API reference, from the docstrings and the CLI's ``--help``.

Run ``python docs/gen_api.py`` after changing a public docstring; ``tests/test_docs.py`` fails
when ``docs/api.md`` is out of date. Offline and deterministic: it imports xcloud, nothing else.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import re
import sys
from pathlib import Path

OUT = Path(__file__).with_name("api.md")

#: (section title, intro, [dotted names]); a name ending in ".*" expands to the module's __all__.
SECTIONS: list[tuple[str, str, list[str]]] = [
    (
        "Masking",
        "`import xcloud` registers the `cloud` accessor on every `xr.Dataset` and `xr.DataArray`.",
        [
            "xcloud.mask",
            "xcloud.CascadeOptions",
            "xcloud.route",
            "xcloud.to_zarr",
            "xcloud.io.zarr.store_exists",
        ],
    ),
    (
        "The `cloud` accessor",
        "Each method is a thin facade over the plain function named in its docstring "
        "(`ds.cloud.mask(...)` is `xcloud.mask(ds, ...)`).",
        [
            "xcloud.accessor._CloudAccessor.mask",
            "xcloud.accessor._CloudAccessor.route",
            "xcloud.accessor._CloudAccessor.to_zarr",
            "xcloud.accessor._CloudAccessor.usable",
            "xcloud.accessor._CloudAccessor.to_cog",
            "xcloud.accessor._CloudAccessor.to_stac",
            "xcloud.accessor._CloudAccessor.where_usable",
            "xcloud.accessor._CloudAccessor.plot",
            "xcloud.accessor._CloudAccessor.plot_rgb",
            "xcloud.accessor._CloudAccessor.plot_cloud_fraction",
        ],
    ),
    (
        "Analysis-ready masks",
        "What to use after masking: pixels safe to use, with a buffer around cloud and shadow, "
        "cloud-free composites over time, and masks as COGs and STAC catalogues.",
        [
            "xcloud.usable",
            "xcloud.where_usable",
            "xcloud.composite",
            "xcloud.to_cog",
            "xcloud.to_stac",
        ],
    ),
    (
        "STAC time series and resumable Zarr cubes",
        'Needs `pip install "xcloud[stac]"` for `open_stac`.',
        [
            "xcloud.open_stac",
            "xcloud.io.stac.stac_items",
            "xcloud.io.stac.check_bbox",
            "xcloud.mask_to_zarr",
            "xcloud.io.pipeline.Region",
            "xcloud.io.stac.is_local_catalogue",
        ],
    ),
    (
        "Models",
        "The registry of every model xcloud can run (see [models.md](models.md)).",
        [
            "xcloud.models.list_models",
            "xcloud.models.available_models",
            "xcloud.models.get_spec",
            "xcloud.models.create_model",
            "xcloud.models.register_model",
            "xcloud.models.ModelSpec",
            "xcloud.models.Predictor",
            "xcloud.models.CLASSES",
            "xcloud.models.FLAG_VALUES",
            "xcloud.models.FLAG_MEANINGS",
        ],
    ),
    (
        "Bands and sensors",
        "How variables are matched to bands, wavelengths and reflectance scaling.",
        ["xcloud.bands.*"],
    ),
    (
        "Plots",
        'matplotlib is optional: `pip install "xcloud[plot]"`.',
        ["xcloud.plot.*"],
    ),
    (
        "Sample data",
        "",
        ["xcloud.data.open_sample", "xcloud.data.SAMPLE_PATH"],
    ),
    (
        "Errors",
        "Every error subclasses `XCloudError` and the builtin exception that fits.",
        ["xcloud.errors.*"],
    ),
]

#: CLI invocations whose ``--help`` is reproduced.
CLI = [["--help"], ["models", "--help"], ["demo", "--help"], ["mask", "--help"]]


def _resolve(dotted: str):
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for p in parts[i:]:
            obj = getattr(obj, p)
        return obj
    raise ImportError(dotted)


def _expand(names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        if name.endswith(".*"):
            mod = importlib.import_module(name[:-2])
            out += [f"{name[:-2]}.{n}" for n in mod.__all__]
        else:
            out.append(name)
    return out


def _public_name(dotted: str) -> str:
    return dotted.replace("xcloud.accessor._CloudAccessor.", "ds.cloud.")


_SECTION = re.compile(r"^([A-Z][A-Za-z ]+)\n-{3,}$", re.MULTILINE)


def _markdown(doc: str) -> str:
    """numpydoc -> Markdown: section headings, parameter lists, doctest blocks fenced."""
    lines = inspect.cleandoc(doc).splitlines()
    out: list[str] = []
    i, section = 0, ""
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"-{3,}", nxt.strip()):
            section = line.strip()
            out += ["", f"**{section}**", ""]
            i += 2
            continue
        if line.startswith(">>>"):
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i])
                i += 1
            out += ["```python", *block, "```"]
            continue
        if (
            section in ("Parameters", "Attributes", "Returns", "Raises")
            and line
            and not line[0].isspace()
        ):
            out.append(f"- `{line.strip()}`")
            i += 1
            continue
        out.append(
            line.strip()
            if section in ("Parameters", "Attributes", "Returns", "Raises") and line.startswith(" ")
            else line
        )
        if section in ("Parameters", "Attributes", "Returns", "Raises") and line.startswith(" "):
            out[-1] = "  " + out[-1]
        i += 1
    return "\n".join(out).strip()


def _signature(obj) -> str:
    try:
        sig = str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""
    sig = sig.replace("(self, ", "(").replace("(self)", "()")
    return re.sub(r" at 0x[0-9a-f]+", "", sig)


def _entry(dotted: str) -> str:
    obj = _resolve(dotted)
    name = _public_name(dotted)
    if inspect.isclass(obj):
        kind = "exception" if issubclass(obj, BaseException) else "class"
        bases = ", ".join(b.__name__ for b in obj.__bases__ if b is not object)
        head = f"### `{name}` ({kind}{': ' + bases if bases else ''})"
        doc = inspect.getdoc(obj) or ""
    elif callable(obj):
        head = f"### `{name}{_signature(obj)}`"
        doc = inspect.getdoc(obj) or ""
    else:
        head = f"### `{name}` (constant)"
        value = repr(obj)
        if isinstance(obj, Path):  # inside the installed package: do not leak this checkout's path
            import xcloud

            pkg = Path(xcloud.__file__).parent
            rel = obj.relative_to(pkg.parent) if obj.is_relative_to(pkg.parent) else obj
            value = f"<install dir>/{rel.as_posix()}"
        doc = f"`{value if len(value) < 300 else value[:297] + '...'}`"
    return f"{head}\n\n{_markdown(doc) if doc else '(no docstring)'}\n"


def _cli_help() -> str:
    from xcloud.cli import main

    parts = []
    for argv in CLI:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
            main(argv)
        text = re.sub(r"[ \t]+$", "", buf.getvalue(), flags=re.MULTILINE).strip()
        parts.append(f"```text\n$ xcloud {' '.join(argv)}\n{text}\n```\n")
    parts.append(
        "`xcloud train` has its own subcommands (`fine`, `coarse`, ...): run "
        "`xcloud train --help`.\n"
    )
    return "\n".join(parts)


def render() -> str:
    """The full text of ``docs/api.md``."""
    import os

    os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal width
    chunks = [
        "# xcloud API reference",
        "",
        "<!-- generated by docs/gen_api.py from the docstrings; do not edit by hand -->",
        "",
        "Contents: "
        + ", ".join(f"[{t}](#{_anchor(t)})" for t, _, _ in SECTIONS)
        + ", [Command line](#command-line).",
        "",
    ]
    for title, intro, names in SECTIONS:
        chunks += [f"## {title}", ""]
        if intro:
            chunks += [intro, ""]
        chunks += [_entry(n) for n in _expand(names)]
    chunks += ["## Command line", "", _cli_help()]
    return "\n".join(chunks).rstrip() + "\n"


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run python docs/gen_api.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`chggen --help` and building the parser stay cheap: every command builds the whole parser, which
loads every plugin's registration module, so none of them may import a heavy backend at import."""

import subprocess
import sys

# seconds each, measured: torch ~2, pymatgen's AFLOW prototype data ~3.5, CHGNet ~1.2, PyXtal ~1.5
HEAVY = ["torch", "pymatgen.analysis.prototypes", "chgnet", "pyxtal", "matplotlib", "mattergen",
         "torch_geometric", "omegaconf", "chggen_plugins.api", "chggen_native.model",
         "chggen_diffcsp.model", "chggen_mattergen.model"]


def test_building_the_cli_imports_no_backend():
    code = ("import sys\n"
            "import chggen_plugins.cli as cli\n"
            "parser = cli.build_parser()\n"
            "assert 'train' in parser.format_help()  # the native plugin's command was registered\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_package_names_still_resolve_on_first_use():
    import chggen_native
    import chggen_plugins

    assert chggen_plugins.inpaint.__module__ == "chggen_plugins.api"
    assert chggen_native.NativeScoreModel.__module__ == "chggen_native.model"

"""Device names are checked once, in one place, before anything moves: `--device cuda` on a
CPU-only torch is one line saying which devices this torch can use, not a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from chggen_plugins.cli import main
from chggen_plugins.contract.devices import available_devices, check_device
from chggen_plugins.contract.registry import load_model
from chggen_plugins.errors import ChggenError
from chggen_plugins.runs.config import load_config

EXAMPLES = Path(__file__).parent.parent / "examples"
HAS_CUDA = torch.cuda.is_available()


def test_cpu_is_always_usable_and_gpu_is_not_a_torch_name():
    assert check_device("cpu") == "cpu" and available_devices()[0] == "cpu"
    with pytest.raises(ChggenError, match=r"--device 'gpu': not a torch device name; this torch .* can use cpu"):
        check_device("gpu", "--device")


@pytest.mark.skipif(HAS_CUDA, reason="checks the CPU-only refusal")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_on_a_cpu_only_torch_is_one_line(device):
    with pytest.raises(ChggenError, match=rf"device '{device}': no such device; this torch \(.*\) can use cpu$"):
        check_device(device)


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
def test_cuda_is_accepted_where_torch_has_it():
    assert check_device("cuda") == "cuda"
    with pytest.raises(ChggenError, match="no such device"):
        check_device(f"cuda:{torch.cuda.device_count()}")


def test_load_model_checks_the_device_before_loading():
    with pytest.raises(ChggenError, match="device 'gpu': not a torch device name"):
        load_model("analytic", str(EXAMPLES / "li4si8_reference.cif"), device="gpu")


def test_the_cli_and_the_campaign_config_name_where_the_device_came_from(tmp_path, capsys):
    argv = ["inpaint", str(EXAMPLES / "si_host.cif"), "--guest", "Li:1", "--model", "analytic",
            "--model-source", str(EXAMPLES / "li4si8_reference.cif"), "--out", str(tmp_path / "o.extxyz"),
            "--device", "gpu"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("chggen: error: --device 'gpu': not a torch device name")
    config = tmp_path / "campaign.toml"
    config.write_text('[model]\nname = "analytic"\ndevice = "gpu"\n\n'
                      '[[compositions]]\nformula = "Li2Si"\nguests = ["Li"]\n')
    with pytest.raises(ChggenError, match=r"campaign.toml: key 'model.device' 'gpu': not a torch device name"):
        load_config(config)


def _threads_after_import(environment: dict[str, str]) -> subprocess.CompletedProcess:
    script = "import torch; torch.set_num_threads(2); import chggen_plugins.api; print(torch.get_num_threads())"
    env = {k: v for k, v in os.environ.items() if k != "CHGGEN_THREADS"} | environment
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)


def test_the_api_runs_on_one_torch_thread_unless_told():
    """The README's API example ran 14x slower than the CLI on torch's default threads."""
    assert _threads_after_import({}).stdout.strip() == "1"
    assert _threads_after_import({"CHGGEN_THREADS": "3"}).stdout.strip() == "3"
    bad = subprocess.run([sys.executable, "-m", "chggen_plugins.cli", "models"], capture_output=True, text=True,
                         env=dict(os.environ, CHGGEN_THREADS="many"), timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip() == ("chggen: error: CHGGEN_THREADS='many': a positive integer "
                                                          "number of torch threads")

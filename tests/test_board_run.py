"""`seedlm-fpga board-run` against the simulated board top: the tokens of `run`'s integer reference.

The model is stories260K with layer 0's seven matrices compressed (a fixed-seed encoding, fast)
and the rest carried, so the simulated board computes 7 GEMVs per activation vector.
"""
import json

import pytest

from seedlm_fpga.cli.board_run import decode
from seedlm_fpga.cli.main import main
from seedlm_fpga.compressor.container import write_container
from seedlm_fpga.compressor.llama2c import read_llama2c
from seedlm_fpga.core.board_protocol import BoardImage
from seedlm_fpga.core.reference import PRESETS
from seedlm_fpga.errors import UserError
from seedlm_fpga.evaluation.decode import NumpyBackend, greedy_decode, load_decode_model
from seedlm_fpga.evaluation.tokenizer import Tokenizer
from seedlm_fpga.sim.board_sim import SimulatedBoardPort

from example_data import example_file
from seedlm_samples import random_encoded
from test_evaluate import fixed_seed_encode

PROMPT, STEPS = "Once", 2


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    cfg, tensors = read_llama2c(example_file("stories260K.bin"))
    names = [n for n in tensors if n.startswith("layers.0.") and tensors[n].ndim == 2]
    path = tmp_path_factory.mktemp("br") / "l0.seedlm"
    write_container(path, {n: fixed_seed_encode(tensors[n], PRESETS["seedlm-4"], -10) for n in names},
                    {n: t for n, t in tensors.items() if n not in names},
                    {"seedlm.llama2c_config": json.dumps(cfg.__dict__, sort_keys=True)})
    return path, cfg


def reference_tokens(path, cfg) -> list[int]:
    """The same decode with the exact integer GEMV computed on the host (`run`'s NumpyBackend)."""
    model = load_decode_model(path)
    ids = Tokenizer.load(example_file("tok512.bin"), cfg.vocab_size).encode(PROMPT, bos=True)
    return ids + greedy_decode(model, NumpyBackend(model), ids, STEPS)


def test_board_run_on_the_simulated_top_gives_the_reference_tokens(model):
    path, cfg = model
    ports = []

    def port_for(image):
        ports.append(SimulatedBoardPort(image))
        return ports[0]

    result = decode(path, port_for, "ulx3s-85f", PROMPT, STEPS)
    assert result["tokens"] == reference_tokens(path, cfg)
    assert result["new_tokens"] == STEPS
    # KV-cached: one vector per position fed (the prompt but its last token, then one per step),
    # through each of the 7 compressed layers
    prompt = len(result["tokens"]) - STEPS
    assert result["gemvs"] == 7 * (prompt - 1 + STEPS)
    assert ports[0].cycles > 0


def test_board_run_refuses_a_board_holding_another_image(model):
    path, _ = model
    import numpy as np
    other = BoardImage.build([("x", random_encoded(np.random.default_rng(0), 4, 16))], 32)
    with pytest.raises(UserError, match="holds another image"):
        decode(path, lambda image: SimulatedBoardPort(other), "ulx3s-85f", PROMPT, STEPS)


def test_board_run_bad_port_is_one_line(model, capsys):
    path, _ = model
    assert main(["board-run", str(path), "--port", "/nonexistent/ttyUSB9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/nonexistent/ttyUSB9" in err[0]

"""Heads composed onto the encoder-decoder (models/heads.py), and the drafter's and editor's
own protocols: parameter names of saved checkpoints stay, heads never shift the other
weights, the readout is the only thing decoding sees, and models without ``step`` say so."""

from __future__ import annotations

import pytest
import torch

from seqweave.errors import ConfigError
from seqweave.models import build_model
from seqweave.models.base import require_step
from seqweave.models.heads import HEADS, TOKEN_READOUT
from seqweave.models.nar_drafter import BlockDrafter
from seqweave.models.nar_editor import Editor
from tests.conftest import tiny_config, tiny_model

# parameter names as checkpoints written before heads were composed hold them
SAVED_NAMES = {
    "action_head": {"action_head.hidden.weight", "action_head.out.bias"},
    "contrastive_head": {"contrastive_head.0.weight", "contrastive_head.0.bias"},
    "restore_head": {"restore_head.dense.weight", "restore_head.norm.weight"},
    "scalar_head": {"scalar_head.project.weight", "scalar_head.regress.2.bias"},
    "tag_head": {"tag_head.0.weight", "tag_head.2.bias"},
}
HEAD_OPTIONS = {
    "action_head": dict(action_head=True, skip_id=3),
    "contrastive_head": dict(contrastive_dim=8),
    "restore_head": dict(restore_head=True),
    "scalar_head": dict(scalar_head=True, scalar_id=4, mask_id=5),
    "tag_head": dict(tag_head="mlp"),
}


@pytest.mark.parametrize("name", list(HEADS))
def test_a_head_keeps_its_saved_parameter_names_and_leaves_the_rest_as_without_it(name):
    plain = tiny_model(seed=7)
    headed = tiny_model(seed=7, **HEAD_OPTIONS[name])
    names = set(headed.state_dict())
    assert SAVED_NAMES[name] <= names
    assert {n for n in names if n.split(".")[0] in HEADS} == {
        n for n in names if n.startswith(name + ".")
    }
    theirs = plain.state_dict()
    for key, tensor in headed.state_dict().items():
        if not key.startswith(name + "."):
            assert torch.equal(tensor, theirs[key]), key
    assert set(theirs) == {n for n in names if not n.startswith(name + ".")}


def test_the_readout_is_the_action_head_or_the_output_layer():
    assert tiny_model().readout is TOKEN_READOUT
    action = tiny_model(**HEAD_OPTIONS["action_head"])
    assert action.readout is action.action_head
    for name in ("contrastive_head", "restore_head", "scalar_head", "tag_head"):  # not decoding
        assert tiny_model(**HEAD_OPTIONS[name]).readout is TOKEN_READOUT


@pytest.mark.parametrize(
    ("architecture", "protocol", "message"),
    [
        ("nar_drafter", BlockDrafter, "drafts for another model"),
        ("nar_editor", Editor, "revises translations in fixed passes"),
    ],
)
def test_drafter_and_editor_have_their_protocol_and_no_step(architecture, protocol, message):
    model = build_model(tiny_config(architecture=architecture))
    assert not hasattr(model, "step")
    members = [n for n in vars(protocol) if not n.startswith("_")]
    members += list(protocol.__annotations__)
    for name in members:
        assert hasattr(model, name), name
    with pytest.raises(ConfigError, match=message):
        require_step(model)
    for name in HEADS:
        assert not hasattr(model, name)
    require_step(tiny_model())  # an encoder-decoder decodes

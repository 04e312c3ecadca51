"""Configuration: TOML files, ``--set`` overrides, errors that name the bad key, JSON round trip."""

from __future__ import annotations

import dataclasses
import json
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqweave.config import (
    ClapsConfig,
    DataConfig,
    DecodeConfig,
    DenoisingConfig,
    ExperimentConfig,
    ModelConfig,
    ObjectivesConfig,
    SeqPEConfig,
    TokenizerConfig,
    TrainConfig,
    apply_overrides,
    from_dict,
    load_config,
    parse_override,
    to_dict,
)
from seqweave.errors import ConfigError

EXPERIMENT = """
[model]
architecture = "prefix_lm"
d_model = 48
num_heads = 4
position = "rope"
dropout = 0.25
share_embeddings = false

[tokenizer]
kind = "alphabet"
alphabet = "abc"
task_tokens = ["<fix>", "<copy>"]

[data]
train = "data/train.jsonl"
max_tokens = 1024

[train]
lr = 1          # an integer where a float is expected is fine
betas = [0.8, 0.99]
progress = false
precision = "bf16"

[decode]
decoder = "beam"
beam_size = 5
"""


SECTIONS = "data, decode, model, objectives, rl, tokenizer, train"


def write_toml(directory: Path, text: str, name: str = "experiment.toml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


# -- loading TOML ------------------------------------------------------------------------------


def test_load_config_reads_every_section_and_keeps_defaults(tmp_path):
    cfg = load_config(write_toml(tmp_path, EXPERIMENT))
    assert cfg.model == ModelConfig(
        architecture="prefix_lm",
        d_model=48,
        num_heads=4,
        position="rope",
        dropout=0.25,
        share_embeddings=False,
    )
    assert cfg.tokenizer == TokenizerConfig(
        kind="alphabet", alphabet="abc", task_tokens=("<fix>", "<copy>")
    )
    assert cfg.data == DataConfig(train="data/train.jsonl", max_tokens=1024)
    assert cfg.train == TrainConfig(lr=1.0, betas=(0.8, 0.99), progress=False, precision="bf16")
    assert cfg.decode == DecodeConfig(decoder="beam", beam_size=5)
    # TOML arrays become tuples and integers for float fields become floats.
    assert isinstance(cfg.tokenizer.task_tokens, tuple)
    assert isinstance(cfg.train.betas, tuple)
    assert type(cfg.train.lr) is float


def test_empty_file_gives_the_defaults(tmp_path):
    assert load_config(write_toml(tmp_path, "")) == ExperimentConfig()


def test_load_config_applies_overrides_after_the_file(tmp_path):
    path = write_toml(tmp_path, EXPERIMENT)
    cfg = load_config(path, ["train.lr=0.002", "model.d_model=64", "decode.decoder=greedy"])
    assert cfg.train.lr == 0.002
    assert cfg.model.d_model == 64
    assert cfg.decode.decoder == "greedy"
    assert cfg.decode.beam_size == 5  # from the file, untouched
    assert cfg.model.position == "rope"


# -- overrides ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "section", "key", "expected"),
    [
        ("model.d_model=128", "model", "d_model", 128),
        ("model.d_model = 1_024", "model", "d_model", 1024),
        ("train.max_steps=-1", "train", "max_steps", -1),
        ("train.lr=1e-3", "train", "lr", 1e-3),
        ("train.lr=3", "train", "lr", 3.0),
        ("model.dropout=0.5", "model", "dropout", 0.5),
        ("train.progress=false", "train", "progress", False),
        ("train.progress=0", "train", "progress", False),
        ("train.progress=no", "train", "progress", False),
        ("train.progress=False", "train", "progress", False),
        ("decode.early_stopping=false", "decode", "early_stopping", False),
        ("model.tie_output=true", "model", "tie_output", True),
        ("model.scale_embedding=YES", "model", "scale_embedding", True),
        ("data.train=some/file.jsonl", "data", "train", "some/file.jsonl"),
        ("train.out_dir=a=b", "train", "out_dir", "a=b"),  # only the first "=" splits
        ("tokenizer.alphabet=ACGT", "tokenizer", "alphabet", "ACGT"),
        ("train.betas=0.8,0.95", "train", "betas", (0.8, 0.95)),
        ("train.betas=(0.5, 0.75)", "train", "betas", (0.5, 0.75)),
        ("train.betas=[1, 0]", "train", "betas", (1.0, 0.0)),
        ("tokenizer.task_tokens=<a>,<b>,<c>", "tokenizer", "task_tokens", ("<a>", "<b>", "<c>")),
        ('tokenizer.task_tokens=["<x>", "<y>"]', "tokenizer", "task_tokens", ("<x>", "<y>")),
        ("tokenizer.task_tokens=<only>", "tokenizer", "task_tokens", ("<only>",)),
        ("tokenizer.task_tokens=", "tokenizer", "task_tokens", ()),
    ],
)
def test_override_parses_the_value_by_the_field_type(override, section, key, expected):
    base = ExperimentConfig(tokenizer=TokenizerConfig(task_tokens=("<old>",)))
    cfg = apply_overrides(base, [override])
    value = getattr(getattr(cfg, section), key)
    assert value == expected
    assert type(value) is type(expected)
    if isinstance(expected, tuple):
        assert all(type(v) is type(e) for v, e in zip(value, expected, strict=True))
    # Nothing else changed: putting the old value back gives the original config.
    restored = dataclasses.replace(
        getattr(cfg, section), **{key: getattr(getattr(base, section), key)}
    )
    assert dataclasses.replace(cfg, **{section: restored}) == base


@pytest.mark.parametrize(
    ("raw", "expected"), [("none", None), ("null", None), ("false", False), ("yes", True)]
)
def test_override_of_an_optional_field(raw, expected):
    base = ExperimentConfig(model=ModelConfig(scale_embedding=True))
    assert apply_overrides(base, [f"model.scale_embedding={raw}"]).model.scale_embedding is expected


def test_bad_value_for_an_optional_field():
    with pytest.raises(ConfigError, match=r"model\.scale_embedding must be true or false"):
        apply_overrides(ExperimentConfig(), ["model.scale_embedding=sometimes"])


def test_overrides_apply_in_order_and_do_not_mutate_the_input():
    base = ExperimentConfig()
    cfg = apply_overrides(base, ["train.lr=0.1", "train.warmup_steps=7", "train.lr=0.2"])
    assert cfg.train.lr == 0.2
    assert cfg.train.warmup_steps == 7
    assert base == ExperimentConfig()
    assert apply_overrides(base, []) == base


def test_overrides_work_on_a_single_section_config():
    assert apply_overrides(TrainConfig(), ["seed=9"]).seed == 9


def test_parse_override_splits_key_path_and_raw_value():
    assert parse_override(" train.lr = 0.1 ") == (["train", "lr"], "0.1")
    assert parse_override("data.train=a=b") == (["data", "train"], "a=b")


# -- override errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        ("train.lr", r"'train\.lr' is not of the form section\.key=value"),
        ("train", r"not of the form section\.key=value"),
        ("train=1", r"'train' is a section; set one of its keys"),
        ("model=transformer", r"'model' is a section"),
        ("trian.lr=1", r"unknown key 'trian\.lr': 'trian' is not one of data, decode, model, "),
        ("train.learning_rate=1", r"'learning_rate' is not one of .*\blr\b.*\bwarmup_steps\b"),
        ("train.lr.value=1", r"'lr' in 'train\.lr\.value' is not a section"),
        ("model.d_model=big", r"model\.d_model must be an integer, got 'big'"),
        ("model.d_model=1.5", r"model\.d_model must be an integer, got '1\.5'"),
        ("model.d_model=", r"model\.d_model must be an integer, got ''"),
        ("train.lr=fast", r"train\.lr must be a number, got 'fast'"),
        ("train.lr=1e-3x", r"train\.lr must be a number"),
        ("train.progress=maybe", r"train\.progress must be true or false, got 'maybe'"),
        ("train.progress=2", r"train\.progress must be true or false"),
        ("train.betas=0.9", r"train\.betas must have 2 comma-separated items"),
        ("train.betas=0.9,0.98,0.999", r"train\.betas must have 2 comma-separated items"),
        ("train.betas=0.9,x", r"train\.betas must be a number, got 'x'"),
        ("train.precision=fp8", r"train\.precision='fp8' is not one of fp32, bf16, fp16"),
        ("train.schedule=linear", r"train\.schedule='linear' is not one of"),
        ("train.accumulate=0", r"train\.accumulate must be >= 1"),
        (
            "model.position=alibi",
            r"model\.position='alibi' is not one of sinusoidal, learned, rope",
        ),
        ("model.architecture=rnn", r"model\.architecture='rnn' is not one of"),
        ("model.activation=tanh", r"model\.activation='tanh' is not one of"),
        ("model.norm=mid", r"model\.norm='mid' is not one of pre, post"),
        ("model.num_heads=3", r"model\.d_model=256 is not divisible by model\.num_heads=3"),
    ],
)
def test_bad_overrides_raise_config_error(override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        apply_overrides(ExperimentConfig(), [override])


def test_unknown_override_key_lists_every_valid_key():
    with pytest.raises(ConfigError) as error:
        apply_overrides(ExperimentConfig(), ["decode.beams=3"])
    message = str(error.value)
    for field in dataclasses.fields(DecodeConfig):
        assert field.name in message
    assert "'decode.beams'" in message


def test_a_bad_override_after_good_ones_still_fails():
    with pytest.raises(ConfigError, match=r"model\.d_model must be an integer"):
        apply_overrides(ExperimentConfig(), ["train.lr=0.1", "model.d_model=x"])


# -- TOML errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (
            "[trian]\nlr = 1.0\n",
            r"unknown key 'trian'; valid keys: " + SECTIONS,
        ),
        ("lr = 1.0\n", r"unknown key 'lr'; valid keys: " + SECTIONS),
        ("[model]\nd_modle = 64\n", r"unknown key 'model\.d_modle'; valid keys: .*\bd_model\b"),
        ('[model]\nd_model = "64"\n', r"model\.d_model must be int, got '64'"),
        ("[model]\nd_model = 64.0\n", r"model\.d_model must be int, got 64\.0"),
        ("[model]\nd_model = true\n", r"model\.d_model must be int, got True"),
        ('[train]\nlr = "1e-3"\n', r"train\.lr must be float, got '1e-3'"),
        ("[train]\nlr = true\n", r"train\.lr must be float, got True"),
        ("[train]\nprogress = 1\n", r"train\.progress must be bool, got 1"),
        ('[train]\nprogress = "false"\n', r"train\.progress must be bool, got 'false'"),
        ("[data]\ntrain = 3\n", r"data\.train must be str, got 3"),
        ('[model]\nscale_embedding = "no"\n', r"model\.scale_embedding must be bool, got 'no'"),
        ("[train]\nbetas = 0.9\n", r"train\.betas must be a list, got 0\.9"),
        ("[train]\nbetas = [0.9]\n", r"train\.betas must have 2 items, got 1"),
        ('[train]\nbetas = [0.9, "x"]\n', r"train\.betas must be float, got 'x'"),
        ('[tokenizer]\ntask_tokens = ["<a>", 1]\n', r"tokenizer\.task_tokens must be str, got 1"),
        ("model = 3\n", r"\[model\] must be a table, got int"),
        ("[train.lr]\nvalue = 1\n", r"train\.lr must be float"),
        ('[train]\nprecision = "fp8"\n', r"train\.precision='fp8' is not one of"),
        ('[model]\nposition = "alibi"\n', r"model\.position='alibi' is not one of"),
        ("[model]\nd_model = 30\nnum_heads = 4\n", r"not divisible by model\.num_heads=4"),
        (
            '[model]\nposition = "rope"\nd_model = 12\nnum_heads = 4\n',
            r"model\.position='rope' needs an even head dimension",
        ),
    ],
)
def test_bad_toml_values_raise_config_error(tmp_path, text, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(write_toml(tmp_path, text))


def test_unknown_toml_key_lists_every_valid_key(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(write_toml(tmp_path, "[train]\nleraning_rate = 0.1\n"))
    message = str(error.value)
    for field in dataclasses.fields(TrainConfig):
        assert field.name in message
    assert "leraning_rate" in message


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nope" / "experiment.toml"
    with pytest.raises(ConfigError, match=re.escape(f"config file {missing} does not exist")):
        load_config(missing)


@pytest.mark.parametrize(
    "text",
    [
        "[model\nd_model = 4\n",  # unclosed table header
        "[model]\nd_model = \n",  # missing value
        "[model]\nd_model = 4\nd_model = 8\n",  # duplicate key
        "[train]\nlr = 1e-3 # ok\nseed = 'unterminated\n",
    ],
)
def test_invalid_toml_names_the_file(tmp_path, text):
    path = write_toml(tmp_path, text)
    with pytest.raises(ConfigError, match="^" + re.escape(f"{path}: invalid TOML: ")):
        load_config(path)


def test_toml_that_is_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes("[train]\nlr = 1e-3  # café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_config(path)


def test_config_path_that_is_a_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=re.escape(str(tmp_path))):
        load_config(tmp_path)


# -- JSON round trip ---------------------------------------------------------------------------


def test_to_dict_is_plain_json_with_lists_for_tuples():
    cfg = ExperimentConfig(tokenizer=TokenizerConfig(task_tokens=("<a>",)))
    values = to_dict(cfg)
    assert values["train"]["betas"] == [0.9, 0.98]
    assert values["tokenizer"]["task_tokens"] == ["<a>"]
    assert set(values) == {"model", "tokenizer", "data", "train", "decode", "objectives", "rl"}
    assert json.loads(json.dumps(values)) == values


def test_round_trip_of_a_loaded_file(tmp_path):
    cfg = load_config(write_toml(tmp_path, EXPERIMENT))
    again = from_dict(ExperimentConfig, json.loads(json.dumps(to_dict(cfg))))
    assert again == cfg
    assert again != ExperimentConfig()  # the file really changed something


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def experiment_configs(draw) -> ExperimentConfig:
    heads = draw(st.integers(1, 8))
    model = ModelConfig(
        d_model=heads * draw(st.integers(1, 64)),
        num_heads=heads,
        vocab_size=draw(st.integers(1, 10**6)),
        dropout=draw(finite),
        layer_norm_eps=draw(finite),
        tie_output=draw(st.booleans()),
        scale_embedding=draw(st.sampled_from([None, True, False])),
        position=draw(st.sampled_from(["sinusoidal", "learned"])),
    )
    tokenizer = TokenizerConfig(
        task_tokens=tuple(draw(st.lists(st.text(min_size=1, max_size=5), max_size=3))),
        alphabet=draw(st.text(max_size=10)),
    )
    train = TrainConfig(
        lr=draw(finite),
        betas=(draw(finite), draw(finite)),
        max_steps=draw(st.integers(-(2**40), 2**40)),
        max_minutes=draw(finite),
        progress=draw(st.booleans()),
        precision=draw(st.sampled_from(["fp32", "bf16", "fp16"])),
    )
    decode = DecodeConfig(
        beam_size=draw(st.integers(1, 64)),
        temperature=draw(finite),
        top_p=draw(finite),
    )
    data = DataConfig(max_tokens=draw(st.integers(0, 10**9)), train=draw(st.text(max_size=12)))
    share = st.floats(0, 0.5)
    objectives = ObjectivesConfig(
        denoising=DenoisingConfig(mask_rate=draw(share), replace_rate=draw(share)),
        claps=ClapsConfig(temperature=draw(st.floats(1e-3, 10)), kl_bound=draw(st.floats(0, 1))),
        seqpe=SeqPEConfig(max_position=draw(st.integers(0, 10**6))),
    )
    return ExperimentConfig(
        model=model,
        tokenizer=tokenizer,
        data=data,
        train=train,
        decode=decode,
        objectives=objectives,
    )


@settings(max_examples=60, deadline=None)
@given(experiment_configs())
def test_to_dict_from_dict_round_trip(cfg):
    values = to_dict(cfg)
    assert from_dict(ExperimentConfig, values) == cfg
    # Also through an actual JSON file's text, as config.json is written and read.
    assert from_dict(ExperimentConfig, json.loads(json.dumps(values))) == cfg


def test_from_dict_checks_each_section_class():
    assert from_dict(TrainConfig, {"lr": 2}) == TrainConfig(lr=2.0)
    with pytest.raises(ConfigError, match=r"unknown key 'beam'; valid keys: .*beam_size"):
        from_dict(DecodeConfig, {"beam": 4})


# -- objectives sections and the old flat keys -------------------------------------------------

OLD_OBJECTIVES = """
[model]
contrastive_dim = 8
position = "seqpe"

[train]
lr = 0.002
action_weight = 0.5
length_weight = 2.0
noise_mask_rate = 0.2
noise_replace_rate = 0.1
e2s2_denoise_weight = 1.0
e2s2_contrastive_weight = 0.3
e2s2_temperature = 0.2
seqpe_contrastive_weight = 0.1
seqpe_distill_weight = 0.2
seqpe_max_position = 999
claps_weight = 0.7
claps_temperature = 0.3
claps_imposter_eps = 0.4
claps_distant_eta = 2.5
claps_kl_bound = 0.05

[objectives.set_matching]
ot_weight = 0.25

[objectives.rearec]
negatives = 5

[objectives.self_critical]
max_len = 30

[objectives.spinning]
label = 0
"""

NEW_OBJECTIVES = """
[model]
contrastive_dim = 8
position = "seqpe"

[train]
lr = 0.002

[objectives.actions]
weight = 0.5

[objectives.length]
weight = 2.0

[objectives.denoising]
mask_rate = 0.2
replace_rate = 0.1

[objectives.e2s2]
denoise_weight = 1.0
contrastive_weight = 0.3
temperature = 0.2

[objectives.seqpe]
contrastive_weight = 0.1
distill_weight = 0.2
max_position = 999

[objectives.claps]
weight = 0.7
temperature = 0.3
imposter_eps = 0.4
distant_eta = 2.5
kl_bound = 0.05

[objectives.set_matching]
ot_weight = 0.25

[objectives.rearec]
negatives = 5

[objectives.self_critical]
max_len = 30

[objectives.spinning]
label = 0
"""


def test_old_flat_keys_load_to_the_same_config_as_the_sections(tmp_path):
    old = load_config(write_toml(tmp_path, OLD_OBJECTIVES, "old.toml"))
    new = load_config(write_toml(tmp_path, NEW_OBJECTIVES, "new.toml"))
    assert old == new
    assert new.objectives.claps.weight == 0.7 and new.objectives.seqpe.max_position == 999
    assert new.objectives.denoising.mask_rate == 0.2 and new.objectives.actions.weight == 0.5
    for name, section in vars(new.objectives).items():
        assert section != getattr(ExperimentConfig().objectives, name), name


def test_every_old_key_maps_to_a_field_that_exists():
    from seqweave.config_parse import LEGACY_KEYS

    for section, moved in LEGACY_KEYS.items():
        fields = {f.name for f in dataclasses.fields(getattr(ExperimentConfig(), section))}
        for old, path in moved.items():
            assert old not in fields  # it did leave its section
            value = ExperimentConfig()
            for part in path:
                value = getattr(value, part)  # raises if the new path does not exist


def test_a_saved_config_json_with_old_keys_loads(tmp_path):
    old = load_config(write_toml(tmp_path, OLD_OBJECTIVES))
    values = to_dict(old)
    flat = {**values["train"], "claps_weight": 0.7, "seqpe_max_position": 999}
    saved = {k: v for k, v in values.items() if k != "objectives"} | {"train": flat}
    saved["objectives"] = {"claps": {"kl_bound": 0.05}}  # a mix of old and new keys
    loaded = from_dict(ExperimentConfig, json.loads(json.dumps(saved)))
    assert loaded.objectives.claps == dataclasses.replace(
        ExperimentConfig().objectives.claps, weight=0.7, kl_bound=0.05
    )
    assert loaded.objectives.seqpe.max_position == 999
    assert saved["train"]["claps_weight"] == 0.7  # the caller's values are left alone


def test_old_override_keys_set_the_new_fields():
    cfg = apply_overrides(
        ExperimentConfig(model=ModelConfig(contrastive_dim=8)),
        ["train.claps_weight=0.5", "train.noise_mask_rate=0.3", "train.action_weight=0"],
    )
    assert cfg.objectives.claps.weight == 0.5
    assert cfg.objectives.denoising.mask_rate == 0.3
    assert cfg.objectives.actions.weight == 0.0
    assert cfg == apply_overrides(
        ExperimentConfig(model=ModelConfig(contrastive_dim=8)),
        [
            "objectives.claps.weight=0.5",
            "objectives.denoising.mask_rate=0.3",
            "objectives.actions.weight=0",
        ],
    )
    with pytest.raises(ConfigError, match=r"objectives\.claps\.weight must be >= 0"):
        apply_overrides(ExperimentConfig(), ["train.claps_weight=-1"])


def test_an_old_key_and_its_new_one_with_different_values_are_refused(tmp_path):
    text = "[train]\nclaps_kl_bound = 0.2\n\n[objectives.claps]\nkl_bound = 0.3\n"
    with pytest.raises(ConfigError, match=r"train\.claps_kl_bound .*keep only objectives\.claps"):
        load_config(write_toml(tmp_path, text))
    same = "[train]\nclaps_kl_bound = 0.3\n\n[objectives.claps]\nkl_bound = 0.3\n"
    assert load_config(write_toml(tmp_path, same)).objectives.claps.kl_bound == 0.3


def test_an_old_key_where_it_cannot_move_names_the_new_one():
    with pytest.raises(ConfigError, match=r"'claps_weight' \(now objectives\.claps\.weight\)"):
        from_dict(TrainConfig, {"claps_weight": 1.0})
    with pytest.raises(ConfigError, match=r"now objectives\.seqpe\.max_position.*\blr\b"):
        apply_overrides(TrainConfig(), ["seqpe_max_position=3"])


def test_a_typo_in_an_objectives_section_lists_its_keys(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(write_toml(tmp_path, "[objectives.claps]\nwieght = 1.0\n"))
    message = str(error.value)
    assert "'objectives.claps.wieght'" in message
    for name in ("weight", "temperature", "imposter_eps", "distant_eta", "kl_bound"):
        assert name in message
    with pytest.raises(
        ConfigError,
        match=(
            "'e2s2x' is not one of actions, claps, denoising, e2s2, length, rearec, "
            "self_critical, seqpe"
        ),
    ):
        apply_overrides(ExperimentConfig(), ["objectives.e2s2x.weight=1"])
    with pytest.raises(ConfigError, match=r"unknown key 'train\.clap_weight'.*\blr\b"):
        apply_overrides(ExperimentConfig(), ["train.clap_weight=1"])

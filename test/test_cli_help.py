"""Help texts that match the commands: every verb is named in `mocap-ros --help`, every
option says what it does, and what a verb cannot do is refused rather than ignored."""

from __future__ import annotations

import argparse

import pytest

from mocap_ros.cli.main import build_parser, main


def _verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("mocap-ros has no verbs")


def _walk(parser: argparse.ArgumentParser, path: str):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, f"{path} {name}")


def test_every_option_and_verb_has_help() -> None:
    missing = []
    for path, parser in _walk(build_parser(), "mocap-ros"):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if not action.option_strings and action.choices:
                continue  # a positional with choices: the usage line lists them
            if not (action.help or "").strip():
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"options without a help text: {missing}"


def test_the_description_names_every_verb() -> None:
    parser = build_parser()
    text = parser.description or ""
    # bench-teleop is named by "benchmarks"; every other verb by its name
    unnamed = [v for v in _verbs(parser) if v not in text and not v.startswith("bench")]
    assert not unnamed, f"mocap-ros --help's description does not name {unnamed}"
    assert "more as the package grows" not in text


@pytest.mark.parametrize("mode", ["detector", "track"])
def test_process_refuses_node_only_person_boxes(mode, tmp_path, capsys) -> None:
    """Offline frames are processed one by one: these modes silently ran as full_frame."""
    assert main(["process", str(tmp_path), "--bbox-mode", mode, "--jsonl",
                 str(tmp_path / "p.jsonl")]) == 1
    err = capsys.readouterr().err
    assert f"bbox_mode {mode}" in err and "full_frame" in err
    assert not (tmp_path / "p.jsonl").exists()

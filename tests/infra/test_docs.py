"""docs/deploy.md stays true to the program: every config key listed, and its code blocks runnable
in one shell, in order: variables set before they are used, `txguard` commands and options that
parse, config keys the program reads, stack outputs it exports, topics and subscriptions it declares,
`--target` patterns that each match one declared resource. docs/infra.md's identity table names
exactly the roles each identity is granted."""

from __future__ import annotations

import json
import re
import shlex

import pytest
from conftest import GROUP
from pulumi_mocks import OVERRIDES, PROJECT_NUMBER, PUBSUB_AGENT, ROOT, StackRun
from test_program import iam_grants

from txguard.contract import names

DEPLOY = (ROOT / "docs" / "deploy.md").read_text()
STACK_KEYS = {"gcp:project", "gcp:region"}


def keys_read_by_config() -> set[str]:
    """Config keys infra/config.py reads (`{prefix}X` expanded for the three functions)."""
    source = (ROOT / "infra" / "config.py").read_text()
    found = set(re.findall(r'(?:get(?:_int|_bool|_float|_object)?\(|_(?:int|bool|float)\(cfg, )(f?)"([^"]+)"', source))
    keys = set()
    for is_f, key in found:
        if is_f:
            keys |= {key.replace("{prefix}", fn) for fn in ("scoring", "enrich", "label")}
        else:
            keys.add(key)
    return keys


def test_config_table_lists_exactly_the_keys_the_program_reads() -> None:
    documented = set(re.findall(r"^\| `txguard:(\w+)` \|", DEPLOY, flags=re.M))
    read = keys_read_by_config()
    assert len(read) > 30  # the regex found the getters
    assert documented == read


def commands(text: str = DEPLOY) -> list[list[str]]:
    """Every command of the bash blocks, in document order, as words (comments dropped)."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        pending = ""
        for line in block.replace("\\\n", " ").splitlines():
            pending += line + "\n"
            try:
                words = shlex.split(pending, comments=True)
            except ValueError:  # a quoted argument spanning lines: read on
                continue
            pending = ""
            if words:
                out.append(words)
        assert not pending.strip(), f"unclosed quote in a bash block: {pending[:80]}"
    return out


def test_the_walker_reads_blocks_in_order() -> None:
    sample = "```bash\nA=1   # set\nfoo --x \\\n  \"$A\"\nb 'x\ny'\n```\ntext\n```bash\nbar\n```\n"
    assert commands(sample) == [["A=1"], ["foo", "--x", "$A"], ["b", "x\ny"], ["bar"]]


def _placeholders(word: str) -> str:
    return re.sub(r"\$\(([^)]*)\)|\$\{?(\w+)\}?", lambda m: (m.group(2) or "X").lower(), word)


def test_variables_are_set_before_they_are_used() -> None:
    defined: set[str] = set()
    for words in commands():
        for word in words:
            for name in re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", re.sub(r"\$\([^)]*\)", "", word)):
                assert name in defined, f"${name} used before it is set: {' '.join(words)}"
        if words[0] == "export":
            words = words[1:]
        if words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
            defined.add(words[0].split("=", 1)[0])
    assert {"PROJECT", "REGION", "BUCKET"} <= defined


def test_txguard_commands_parse() -> None:
    from txguard.cli.main import build_parser

    parser = build_parser()
    found = [w for w in commands() if w[0] == ".venv/bin/txguard"]
    assert len(found) >= 4
    for words in found:
        try:
            parser.parse_args([_placeholders(w) for w in words[1:]])
        except SystemExit as exc:  # argparse's way of refusing
            pytest.fail(f"`{' '.join(words)}` does not parse ({exc})")


def test_config_keys_outputs_topics_and_services_exist(default_stack: StackRun) -> None:
    readable = STACK_KEYS | {f"txguard:{k}" for k in keys_read_by_config()}
    topics = {t.name for t in names.TOPICS}
    subscriptions = {s.name for s in names.SUBSCRIPTIONS}
    checked = 0
    for words in commands():
        if words[:3] in (["pulumi", "config", "set"], ["pulumi", "config", "get"]):
            key = next(w for w in words[3:] if not w.startswith("-"))
            assert re.sub(r"\[\d+\]$", "", key) in readable, key
        elif words[:3] == ["pulumi", "stack", "output"] and len(words) > 3:
            assert words[3] in default_stack.outputs, words[3]
        elif words[:4] == ["gcloud", "pubsub", "topics", "publish"]:
            assert words[4] in topics, words[4]
        elif words[:4] == ["gcloud", "pubsub", "subscriptions", "pull"]:
            assert words[4] in subscriptions, words[4]
        elif words[:3] == ["gcloud", "run", "services"]:
            assert words[4] in (names.SCORING_FUNCTION, names.ENRICH_FUNCTION), words[4]
        else:
            continue
        checked += 1
    assert checked >= 12


def target_patterns() -> list[str]:
    return [w.split("=", 1)[-1] for words in commands() for i, w in enumerate(words)
            if words[i - 1] == "--target" or w.startswith("--target=")]


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Pulumi's --target wildcards: `**` matches anything, `*` anything but a `:`."""
    parts = re.split(r"(\*\*|\*)", pattern)
    return re.compile("".join(".*" if p == "**" else "[^:]*" if p == "*" else re.escape(p) for p in parts) + "$")


def test_target_patterns_match_one_declared_resource_each(default_stack: StackRun) -> None:
    patterns = target_patterns()
    assert len(patterns) == 4
    for pattern in patterns:
        # The mock monitor prefixes the root stack's type, the engine does not; a ** prefix covers both.
        matched = [u for u in default_stack.urns if glob_to_regex(pattern).match(u)]
        assert len(matched) == 1, (pattern, matched)
        engine_urn = re.sub(r"pulumi:pulumi:Stack\$", "", matched[0])  # the URN `pulumi up` will see
        assert glob_to_regex(pattern).match(engine_urn), (pattern, engine_urn)
    assert glob_to_regex("**$a:b::c").match("urn:pulumi:prod::txguard::x$a:b::c")


def test_every_target_brings_its_parents(default_stack: StackRun) -> None:
    """The engine refuses to create a targeted resource under a component that is neither in the stack
    nor targeted ("untargeted create"): on an empty project every parent must be targeted too, up to
    the root stack, which the engine creates itself."""
    targeted = {u for p in target_patterns() for u in default_stack.urns if glob_to_regex(p).match(u)}
    parents = {u: default_stack.parents.get(u) for u in targeted}
    assert any(p in targeted for p in parents.values())  # the mocks record parents
    for urn, parent in parents.items():
        while parent is not None and "::pulumi:pulumi:Stack::" not in parent:
            assert parent in targeted, f"{urn} is under {parent}, which no --target names"
            parent = default_stack.parents.get(parent)


def identity_table() -> dict[str, set[str]]:
    """docs/infra.md's identity table: identity cell -> the roles of its rows (a blank identity cell
    continues the identity above)."""
    section = (ROOT / "docs" / "infra.md").read_text().split("## Identities and access")[1].split("\n## ")[0]
    table: dict[str, set[str]] = {}
    identity = ""
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("| identity"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        identity = cells[0] or identity
        table.setdefault(identity, set()).update(re.findall(r"`(roles/[^`]+)`", cells[1]))
    return table


def member_of(identity: str, members: set[str]) -> str:
    if account := re.match(r"`(txguard-[a-z]+)`", identity):
        found = [m for m in members if m.startswith(f"serviceAccount:{account.group(1)}@")]
        assert len(found) == 1, (identity, found)
        return found[0]
    agents = {"Pub/Sub service agent": PUBSUB_AGENT,
              "IAP service agent": f"serviceAccount:service-{PROJECT_NUMBER}@gcp-sa-iap.iam.gserviceaccount.com",
              "the `analystsGroup` group": f"group:{GROUP}"}
    assert identity in agents, f"docs/infra.md names an identity the test does not know: {identity!r}"
    return agents[identity]


def test_the_identity_table_lists_exactly_the_roles_granted(console_stack: StackRun, override_stack: StackRun) -> None:
    """Every identity of the console stack (the default stack plus the console) and the batch
    launchers of the override stack: the table's roles equal the declared grants, row for row."""
    table = identity_table()
    launchers = next(k for k in table if k.startswith("`batchLaunchers`"))
    launcher = json.loads(OVERRIDES["txguard:batchLaunchers"])[0]
    assert table.pop(launchers) == {role for _, role, _ in iam_grants(override_stack)[launcher]}
    granted = {member: {role for _, role, _ in grants} for member, grants in iam_grants(console_stack).items()}
    documented = {member_of(identity, set(granted)): roles for identity, roles in table.items()}
    assert documented == granted

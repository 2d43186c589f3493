"""The config file and Settings: every mistake named with its line, and the precedence of
options, environment, file and defaults."""

import subprocess
import sys
from pathlib import Path

import pytest

from opencomms.channels.registry import SandboxOptions
from opencomms.config import load_settings
from opencomms.configfile import ConfigError, parse
from opencomms.domain.channels import ChannelType

GOOD = """
[server]
port = 9000
database_url = "sqlite:///from-file.db"

[worker]
batch_size = 200
lanes = 1

[[routes]]
name = "sandbox"
type = "sandbox"

[[routes]]
name = "slow"
type = "sandbox"
delay = 2.5

[[senders]]
channel = "SMS"
address = "+15550001111"
route = "slow"
mps = 10
display_name = "Acme alerts"

[senders.tags]
team = "ops"

[[senders]]
channel = "RCS"
address = "acme_agent"
route = "sandbox"
account = "AC0123456789abcdef0123456789abcdef"

[limits]
requests_per_second = 50
burst = 100

[events]
allowed_networks = ["10.0.0.0/8", "2001:db8::/32"]
retention_days = 3
"""


def problems(source: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(source, "oc.toml")
    return caught.value.problems


def test_a_good_file_gives_every_section() -> None:
    config = parse(GOOD, "oc.toml")
    assert config.server.port == 9000
    assert config.worker == {"batch_size": 200, "lanes": 1}
    assert [r.name for r in config.routes] == ["sandbox", "slow"]
    assert config.routes[1].options == SandboxOptions(delay=2.5)
    first, second = config.senders
    assert (first.channel, first.mps, first.route, first.tags) == (
        ChannelType.SMS,
        10,
        "slow",
        {"team": "ops"},
    )
    assert first.account_sid is None
    assert second.account_sid == "AC0123456789abcdef0123456789abcdef"
    assert config.limits.requests_per_second == 50
    assert [str(n) for n in config.events.allowed_networks] == ["10.0.0.0/8", "2001:db8::/32"]
    assert config.events.retention_days == 3
    assert config.events.batch_max == 100


def test_mistakes_name_the_key_and_its_line() -> None:
    source = GOOD.replace('route = "slow"', 'route = "nowhere"').replace(
        "lanes = 1", "lanes = 1\nbogus = true"
    )
    source += '\n[[senders]]\nchannel = "RCS"\naddress = "acme_agent"\nroute = "sandbox"\n'
    source += 'account = "AC0123456789abcdef0123456789abcdef"\nmps = "fast"\n'
    found = problems(source)
    lines = source.splitlines()

    def line_of(text: str, start: int = 0) -> int:
        return next(i for i, line in enumerate(lines, 1) if i > start and text in line)

    assert f"oc.toml:{line_of('bogus')}: worker.bogus: unknown key" in found
    assert any(
        p.startswith(f"oc.toml:{line_of('nowhere')}: senders[0].route: unknown route 'nowhere'")
        for p in found
    )
    fast = line_of('"fast"')
    assert any(p.startswith(f"oc.toml:{fast}: senders[2].mps:") for p in found)
    assert len(found) == 3


def test_duplicates_unknown_types_and_sections() -> None:
    source = GOOD + '\n[[senders]]\nchannel = "SMS"\naddress = "+15550001111"\nroute = "slow"\n'
    source += '\n[[routes]]\nname = "slow"\ntype = "sandbox"\n'
    source += '\n[[routes]]\nname = "eu"\ntype = "pigeon"\n\n[surprise]\nx = 1\n'
    found = problems(source)
    assert any("senders[2].address: duplicate sender SMS +15550001111" in p for p in found)
    assert any("routes[2].name: duplicate route name 'slow'" in p for p in found)
    assert any("routes[3].type: route type 'pigeon' is unavailable" in p for p in found)
    assert any("surprise: unknown section" in p for p in found)


def test_route_options_are_checked_by_their_kind() -> None:
    found = problems('[[routes]]\nname = "s"\ntype = "sandbox"\ndelay = "x"\nspeed = 3\n')
    assert any(p.startswith("oc.toml:4: routes[0].delay:") for p in found)
    assert "oc.toml:5: routes[0].speed: unknown key" in found


def test_a_route_must_carry_its_senders_channel() -> None:
    found = problems(
        '[[routes]]\nname = "relay"\ntype = "smtp"\nhost = "smtp.example.com"\n'
        '[[senders]]\nchannel = "SMS"\naddress = "+15550001111"\nroute = "relay"\n'
    )
    assert found == ["oc.toml:6: senders[0].channel: route 'relay' (type smtp) cannot carry SMS"]


def test_smtp_routes_are_configured_with_their_own_options() -> None:
    found = problems('[[routes]]\nname = "relay"\ntype = "smtp"\nhost = "h"\nport = 0\n')
    assert len(found) == 1 and "port" in found[0]
    found = problems('[[routes]]\nname = "relay"\ntype = "smtp"\nhots = "h"\n')
    assert any("hots" in p for p in found) and any("host" in p for p in found)


def test_bad_toml_names_its_line() -> None:
    [problem] = problems("[worker]\nbatch_size = = 3\n")
    assert "line 2" in problem


def test_precedence_option_env_file_default(tmp_path: Path) -> None:
    file = tmp_path / "oc.toml"
    file.write_text(GOOD)
    env = {
        "OPENCOMMS_CONFIG": str(file),
        "OPENCOMMS_BATCH_SIZE": "300",
        "OPENCOMMS_HOST": "0.0.0.0",
    }
    settings = load_settings(environ=env)
    assert settings.config_file == str(file)
    assert settings.port == 9000  # file
    assert settings.host == "0.0.0.0"  # environment over the default
    assert settings.worker.batch_size == 300  # environment over the file
    assert settings.worker.lanes == 1  # file
    assert settings.worker.max_attempts == 5  # default
    assert settings.database_url == "sqlite:///from-file.db"
    given = load_settings(environ=env, database_url="sqlite:///cli.db", port=7000)
    assert (given.database_url, given.port) == ("sqlite:///cli.db", 7000)
    assert [r.name for r in settings.routes] == ["sandbox", "slow"]
    assert settings.limits.burst == 100


def test_without_a_file_the_sandbox_route_and_default_senders() -> None:
    settings = load_settings(environ={"OPENCOMMS_SANDBOX_DELAY": "0.5"})
    [route] = settings.routes
    assert (route.name, route.type, route.options) == (
        "sandbox",
        "sandbox",
        SandboxOptions(delay=0.5),
    )
    assert [(s.channel, s.address) for s in settings.inventory] == [
        (ChannelType.SMS, "+15005550006"),
        (ChannelType.RCS, "opencomms_sandbox_agent"),
        (ChannelType.WHATSAPP, "+15005550006"),
        (ChannelType.EMAIL, "*"),
    ]


def test_bad_environment_values_name_the_variable() -> None:
    with pytest.raises(ConfigError, match="OPENCOMMS_BATCH_SIZE"):
        load_settings(environ={"OPENCOMMS_BATCH_SIZE": "many"})


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opencomms", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_config_check_command(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    ok = run("config", "check", str(good), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "2 routes, 2 senders" in ok.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[[senders]]\nchannel = "SMS"\naddress = "+1555"\nroute = "x"\n')
    refused = run("config", "check", str(bad), cwd=tmp_path)
    assert refused.returncode == 2
    assert f"{bad}:4: senders[0].route: unknown route 'x'" in refused.stderr
    missing = run("config", "check", str(tmp_path / "none.toml"), cwd=tmp_path)
    assert missing.returncode == 2
    assert "cannot read the config file" in missing.stderr


def test_limits_come_from_the_file_with_the_environment_over_them(tmp_path: Path) -> None:
    file = tmp_path / "limits.toml"
    file.write_text("[limits]\nrequests_per_second = 100\nburst = 200\n")
    from_file = load_settings(config_file=file, environ={})
    assert (from_file.limits.requests_per_second, from_file.limits.burst) == (100, 200)
    overridden = load_settings(
        config_file=file, environ={"OPENCOMMS_RATE_REQUESTS_PER_SECOND": "5"}
    )
    assert (overridden.limits.requests_per_second, overridden.limits.burst) == (5, 200)
    with pytest.raises(ConfigError, match="OPENCOMMS_RATE_BURST"):
        load_settings(config_file=file, environ={"OPENCOMMS_RATE_BURST": "-1"})

from tests.conftest import invoke


def test_version_prints_the_package_version(cli):
    from tcgjobs import __version__

    result = invoke(cli, "--version")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"tcgjobs {__version__}"

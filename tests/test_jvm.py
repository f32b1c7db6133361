"""The class-data archive (fraud.jvm) that the setup makes and every local Spark JVM maps."""

import fraud.jvm
from fraud.jvm import archive_path, launch_options, with_launch_options


def test_the_session_jvm_maps_the_archive_the_setup_made(spark):
    runtime = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    assert archive_path().exists(), "scripts/setup.sh makes it"
    assert f"-XX:SharedArchiveFile={archive_path()}" in list(runtime.getInputArguments())
    assert "sharing" in spark.sparkContext._jvm.java.lang.System.getProperty("java.vm.info")


def test_no_archive_no_option_and_options_are_added_once(tmp_path, monkeypatch):
    assert with_launch_options("-Xmx1g").startswith("-Xmx1g -XX:SharedArchiveFile=")
    assert with_launch_options(with_launch_options(None)) == launch_options()
    # A missing archive named on the command line would turn the JDK's own base archive off too.
    monkeypatch.setattr(fraud.jvm, "CACHE_DIR", tmp_path)
    assert launch_options() == "" and with_launch_options("-Xmx1g") == "-Xmx1g"

import threading

from txguard.contract.process import ProcessWide


def test_built_once_on_first_use_even_when_threads_race() -> None:
    built: list[int] = []
    gate = threading.Barrier(8)

    def build() -> object:
        built.append(1)
        return object()

    wide = ProcessWide(build)
    assert built == []
    seen: list[object] = []

    def ask() -> None:
        gate.wait()
        seen.append(wide.get())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1
    assert len({id(v) for v in seen}) == 1


def test_install_replaces_and_none_rebuilds() -> None:
    counter = iter(range(100))
    wide = ProcessWide(lambda: next(counter))
    assert wide.get() == 0
    wide.install(42)
    assert wide.get() == 42
    wide.install(None)
    assert wide.get() == 1

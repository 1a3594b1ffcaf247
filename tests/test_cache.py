"""The one cache policy (attention_lens/cache.py): bounded, least recently used out, owned folders removed."""
from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from attention_lens.cache import BoundedCache, remove_folder


def test_the_least_recently_used_entry_goes_and_its_owner_hears_of_it():
    gone = []
    cache = BoundedCache(2, on_evict=gone.append)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert gone == [2] and "b" not in cache and len(cache) == 2
    cache.put("a", 10)  # a new value for a key: the old one is released
    assert gone == [2, 1] and cache.get("a") == 10


def test_get_or_make_builds_once_and_a_racer_keeps_the_first_value(tmp_path):
    cache = BoundedCache(4, on_evict=remove_folder)
    made = []

    def make():
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        made.append(folder)
        return folder

    first = cache.get_or_make("k", make)
    assert cache.get_or_make("k", make) == first and len(made) == 1
    # A second caller that built its own while the first one stored: its folder is removed.
    barrier, results = threading.Barrier(2), []

    def slow_make():
        barrier.wait()
        return make()

    threads = [threading.Thread(target=lambda: results.append(cache.get_or_make("r", slow_make))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[0] == results[1] and results[0].is_dir()
    assert sum(f.is_dir() for f in made) == 2  # "k"'s folder and the kept "r" folder; the racer's is gone


def test_clear_releases_everything():
    gone = []
    cache = BoundedCache(3, on_evict=gone.append)
    for k in "abc":
        cache.put(k, k)
    cache.clear()
    assert sorted(gone) == ["a", "b", "c"] and len(cache) == 0

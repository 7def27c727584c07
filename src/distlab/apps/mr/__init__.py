"""MapReduce applications: modules with `map(filename, contents)` and `reduce(key, values)`.

`map` returns an iterable of (key, value) string pairs; `reduce` gets one key and every value
emitted for it and returns the string written after the key in `mr-out-<r>`. An optional
`combine(key, values) -> str` runs on each map task's output before it is written, to shrink
what reducers fetch; it must give the same final output as not running it.

Built in: wc, indexer, grep, and the 6.5840 lab's test applications mtiming, rtiming,
jobcount, early_exit, crash and nocrash. Load any of them, or a module of your own, with
`distlab.apps.mr.loader.load_app`.
"""

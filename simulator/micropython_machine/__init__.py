"""CPython stand-ins for the MicroPython modules the co-processor firmware uses (machine, time).

Loaded only inside a virtual controller's own board process (``python -m simulator.vcontroller
--board``), never in the process that starts it or in a test's: they replace ``sys.modules``
entries there, which no other code should see.
"""

"""`python -m simulator build | status`: the compiled build of the simulator (simulator/native.py)."""

from simulator.native import main

raise SystemExit(main())

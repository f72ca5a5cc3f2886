from casdesired.cli import main

raise SystemExit(main())

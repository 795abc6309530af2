from deact.cli import main

raise SystemExit(main())

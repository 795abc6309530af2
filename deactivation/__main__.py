from deactivation.cli import main

raise SystemExit(main())

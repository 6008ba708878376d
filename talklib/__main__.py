from talklib.cli import main

raise SystemExit(main())

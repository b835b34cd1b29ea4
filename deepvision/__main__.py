from deepvision.cli import main

raise SystemExit(main())

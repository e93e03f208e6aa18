import sys

from docsgen.site import main

sys.exit(main())

from opencomms.cli.app import main

main()

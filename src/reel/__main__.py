from reel.cli.app import main

main()

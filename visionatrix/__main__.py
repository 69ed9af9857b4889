from visionatrix.cli import main

main()

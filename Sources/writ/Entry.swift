import WritCLI

@main
extension WritCommand {}

/// Writ's own hot paths (filled in as the modules land).
func writBenchmarks() {}

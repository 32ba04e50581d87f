//go:build race

package engine

// raceEnabled: the race detector makes every frame larger, so stack-size
// properties are checked only without it (make test runs both).
const raceEnabled = true

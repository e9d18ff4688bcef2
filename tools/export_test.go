package tools

// Build declares the whole registry anew, for tests that compare it with
// the shared one.
var Build = build

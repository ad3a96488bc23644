package gpu

// JITWrites exposes the regeneration counter to the external tests.
var JITWrites = &jitWrites

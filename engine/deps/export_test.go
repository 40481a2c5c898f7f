package deps

// LsRemote exposes ref resolution to the tests.
var LsRemote = lsRemote

// Package podstate is the node's record of every pod network it set up: one typed, versioned
// JSON file per container, written atomically. The node agent writes a record when it
// allocates a pod's network; the CNI plugin reads it to tear down on DEL, also when the agent
// has restarted or is down; the agent reconciles its IP pool against the records at start.
package podstate

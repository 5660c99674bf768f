package multitenant

// Modules of this plugin that live in their own packages register
// themselves when imported; importing the root brings them all in.
import (
	_ "github.com/agistaffers/caddy-multitenant/storage" // caddy.storage.postgres
)

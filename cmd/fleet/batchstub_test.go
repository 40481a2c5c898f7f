package main

// nixEvalStandIn answers a batch's nix eval (engine/deploy/batch.go) as
// the real nix does: a JSON object of each machine named in --apply's
// list to its .drv, /nix/store/0000000000000000000000000000000d-<m>.drv.
// It follows nixStandIn in a stand-in nix script.
const nixEvalStandIn = `if [ "$1" = eval ]; then
	for a; do :; done
	out=
	for m in $(printf '%s\n' "$a" | sed 's/.*\[//; s/\].*//; s/"//g'); do
		out="$out${out:+,}\"$m\":\"/nix/store/0000000000000000000000000000000d-$m.drv\""
	done
	echo "{$out}"; exit 0
fi
`

// nixStoreMachine starts a stand-in nix-store: m is the machine whose
// derivation --realise was given (nixEvalStandIn's .drv).
const nixStoreMachine = `m="${2##*/}"; m="${m#*-}"; m="${m%.drv}"
`

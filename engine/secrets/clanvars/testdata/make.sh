#!/bin/sh
# Remakes clan/, a clan repository's vars and sops folders in the layout
# clan-core writes (read from clan-core d7c35d9127af3f773b57d8e792818597a9aaa29c:
# clan_lib/vars/secret_modules/sops.py, clan_lib/vars/public_modules/in_repo.py,
# clan_cli/secrets/{secrets,sops}.py), with the real sops CLI. Run it in this
# folder:
#   sh make.sh
# It needs age-keygen, ssh-keygen and Go; sops is run as
#   go run github.com/getsops/sops/v3/cmd/sops@v3.13.3
# (set SOPS to a sops 3.13.3 binary to skip the build).
#
# Like clan's encrypt_file, each secret is written to a temporary file
# without an extension (so sops reads and writes it as binary: the output
# is sops JSON with one "data" value) and encrypted in place with
#   sops --config MANIFEST encrypt --in-place FILE
# where MANIFEST is clan's {"creation_rules": [{"key_groups": [{"age": [...]}]}]}
# listing every recipient: the users and machines linked from the secret's
# users/ and machines/ folders. Public values are plain files named value.
#
# alice.txt is a throwaway age identity made only for these tests (the
# fleet admin); bob, web, db and ghost are recipients whose identities were
# thrown away. carol is linked from a secret but has no key (a recipient
# clan recorded that is missing).
set -eu
SOPS=${SOPS:-"go run github.com/getsops/sops/v3/cmd/sops@v3.13.3"}
[ -f alice.txt ] || age-keygen -o alice.txt 2>/dev/null
rm -rf clan && mkdir clan && cd clan
pub() { age-keygen 2>/dev/null | age-keygen -y; }
key() { # key users|machines NAME AGE_RECIPIENT
	mkdir -p "sops/$1/$2"
	printf '[\n  {\n    "publickey": "%s",\n    "type": "age"\n  }\n]' "$3" > "sops/$1/$2/key.json"
}
key users alice "$(age-keygen -y ../alice.txt)"
key users bob "$(pub)"
for m in web db ghost; do key machines $m "$(pub)"; done
# The machines' own age identities, as clan keeps them (not imported).
mkdir -p sops/secrets
recipients() { # recipients DIR: the age keys of DIR/users/* and DIR/machines/*
	for l in "$1"/users/* "$1"/machines/*; do
		[ -f "$l/key.json" ] && sed -n 's/.*"publickey": "\(.*\)".*/\1/p' "$l/key.json"
	done | sort -u | paste -sd, -
}
secret() { # secret DIR VALUE_FILE USERS MACHINES: DIR/secret, as clan's encrypt_secret
	up=$(echo "$1" | sed 's,[^/]*,..,g')
	for u in $3; do mkdir -p "$1/users" && ln -s "$up/../sops/users/$u" "$1/users/$u"; done
	for m in $4; do mkdir -p "$1/machines" && ln -s "$up/../sops/machines/$m" "$1/machines/$m"; done
	tmp=$(mktemp)
	cp "$2" "$tmp"
	printf '{"creation_rules": [{"key_groups": [{"age": ["%s"], "pgp": []}]}]}\n' \
		"$(recipients "$1" | sed 's/,/", "/g')" > manifest.json
	$SOPS --disable-version-check --config manifest.json encrypt --in-place "$tmp"
	mv "$tmp" "$1/secret"
	chmod 644 "$1/secret"
	rm manifest.json
}
public() { # public DIR VALUE_FILE
	mkdir -p "$1" && cp "$2" "$1/value"
}
v=$(mktemp -d)
# vars/per-machine/web/openssh: clan's sshd service (ssh.id_ed25519, and its
# public half not secret).
ssh-keygen -q -t ed25519 -N '' -C '' -f "$v/ssh"
secret vars/per-machine/web/openssh/ssh.id_ed25519 "$v/ssh" "alice bob" web
public vars/per-machine/web/openssh/ssh.id_ed25519.pub "$v/ssh.pub"
# vars/per-machine/ghost/openssh: a machine the fleet does not have.
secret vars/per-machine/ghost/openssh/ssh.id_ed25519 "$v/ssh" "alice bob" ghost
public vars/per-machine/ghost/openssh/ssh.id_ed25519.pub "$v/ssh.pub"
# vars/per-machine/web/user-password-root: clan's users service: the password
# (deploy = false: the admins only) and its hash (for the machine).
printf 'correct-horse-battery-staple-zebra-moon' > "$v/pw"
printf '%s' '$y$j9T$abcdefghijklmnopqrstu.$0123456789abcdefghijklmnopqrstuvwxyzABCDE' > "$v/hash"
secret vars/per-machine/web/user-password-root/user-password "$v/pw" "alice bob" ""
secret vars/per-machine/web/user-password-root/user-password-hash "$v/hash" "alice bob" web
# vars/per-machine/web/zerotier: the identity (secret) and the address (public).
printf '1234567890:0:aaaa:bbbb' > "$v/zt"
printf 'fd00::1' > "$v/ip"
secret vars/per-machine/web/zerotier/zerotier-identity-secret "$v/zt" "alice bob" web
public vars/per-machine/web/zerotier/zerotier-ip "$v/ip"
# vars/per-machine/db/api: one secret file, not made by anything fleet knows.
printf 'tok-123\n' > "$v/tok"
secret vars/per-machine/db/api/token "$v/tok" "alice bob" db
# vars/shared/wifi: a shared generator for web and db, a secret and a public
# file; carol is linked but has no key.
printf 'wifi-pass-42' > "$v/psk"
printf 'home-net' > "$v/ssid"
secret vars/shared/wifi/psk "$v/psk" "alice bob" "web db"
ln -s ../../../../../sops/users/carol vars/shared/wifi/psk/users/carol
public vars/shared/wifi/ssid "$v/ssid"
# vars/shared/backup-age: an age identity, admins only.
age-keygen -o "$v/age" 2>/dev/null
age-keygen -y "$v/age" > "$v/age.pub"
secret vars/shared/backup-age/key "$v/age" "alice bob" ""
public vars/shared/backup-age/key.pub "$v/age.pub"
# The machines' sops identities clan keeps, encrypted like a secret.
age-keygen -o "$v/web-age" 2>/dev/null
secret sops/secrets/web-age.key "$v/web-age" "alice" ""
rm -r "$v"

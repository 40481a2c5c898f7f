#!/bin/sh
# Remakes the sops fixtures with the real sops CLI. Run it in this folder:
#   sh make.sh
# It needs age-keygen and Go; sops is run as
#   go run github.com/getsops/sops/v3/cmd/sops@v3.13.3
# (set SOPS to a sops 3.13.3 binary to skip the build).
# key.txt is a throwaway age identity made only for these tests
# (age-keygen -o key.txt); other.pub the recipient of another, whose
# identity was thrown away: the tests cannot decrypt other.yaml.
set -eu
SOPS=${SOPS:-"go run github.com/getsops/sops/v3/cmd/sops@v3.13.3"}
[ -f key.txt ] || age-keygen -o key.txt
if [ ! -f other.pub ]; then
	age-keygen -o other.txt && age-keygen -y other.txt > other.pub && rm other.txt
fi
me=$(age-keygen -y key.txt)
other=$(cat other.pub)
enc() { # enc FORMAT RECIPIENT IN OUT
	$SOPS --disable-version-check encrypt --input-type "$1" --output-type "$1" --age "$2" "$3" > "$4"
}
enc yaml "$me" plain.yaml secrets.yaml
enc json "$me" plain.json secrets.json
enc dotenv "$me" plain.env secrets.env
enc ini "$me" plain.ini secrets.ini
enc binary "$me" plain.bin secrets.bin
# Encrypted to the other key only: the test cannot decrypt it.
enc yaml "$other" plain.yaml other.yaml
# unencrypted.yaml: sops' unencrypted suffix and mac_only_encrypted.
# (Tampered files are made by the tests from secrets.*.)
printf 'creation_rules:\n  - age: %s\n    unencrypted_suffix: _public\n    mac_only_encrypted: true\n' "$me" > sops-config.yaml
$SOPS --disable-version-check --config sops-config.yaml encrypt plain-suffix.yaml > unencrypted.yaml
rm sops-config.yaml

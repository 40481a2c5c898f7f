# zt-members: list the members of a ZeroTier network as its controller sees
# them (address, authorized, assigned IPs). Run on the controller, as root:
# it authenticates with the local authtoken.secret.
{
  lib,
  writeShellApplication,
  curl,
  jq,
}:
writeShellApplication {
  name = "zt-members";
  runtimeInputs = [
    curl
    jq
  ];
  text = ''
    network="''${1:?usage: zt-members <network-id>}"
    auth="X-ZT1-Auth: $(cat /var/lib/zerotier-one/authtoken.secret)"
    api="http://127.0.0.1:9993/controller/network/$network"

    printf 'address\tauthorized\tips\n'
    curl -fsS -H "$auth" "$api/member" | jq -r 'keys[]' | while read -r member; do
      curl -fsS -H "$auth" "$api/member/$member" |
        jq -r '[.address, (.authorized | tostring), (.ipAssignments | join(","))] | @tsv'
    done
  '';
  meta = {
    description = "List the members of a ZeroTier network on its controller";
    license = lib.licenses.mit;
    mainProgram = "zt-members";
    platforms = lib.platforms.linux;
  };
}

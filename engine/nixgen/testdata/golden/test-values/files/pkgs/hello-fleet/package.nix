{ writeShellApplication }:
writeShellApplication {
  name = "hello-fleet";
  text = ''
    echo "hello from ''${HOSTNAME:-the fleet}"
  '';
}

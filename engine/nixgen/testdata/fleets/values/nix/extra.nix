{ lib, ... }:
{
  environment.etc."fleet-extra".text = "from a hand-written module";
}

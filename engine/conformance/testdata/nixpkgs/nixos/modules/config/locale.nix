# time.timeZone (nixpkgs' nixos/modules/config/locale.nix: a zone name
# without spaces) and i18n.* (nixos/modules/config/i18n.nix).
{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options = {
    time.timeZone = mkOption {
      default = null;
      type = types.nullOr (
        types.addCheck types.str (s: !(lib.hasInfix " " s))
        // {
          description = "null or string without spaces";
        }
      );
    };
    time.hardwareClockInLocalTime = mkOption {
      type = types.bool;
      default = false;
    };
    i18n.defaultLocale = mkOption {
      type = types.str;
      default = "en_US.UTF-8";
    };
    i18n.extraLocaleSettings = mkOption {
      type = types.attrsOf types.str;
      default = { };
    };
    i18n.supportedLocales = mkOption {
      type = types.listOf types.str;
      default = [ "all" ];
    };
  };
}

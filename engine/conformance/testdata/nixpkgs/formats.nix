# pkgs.formats of the fake nixpkgs: each format's `type` is a real option
# type with the shape nixpkgs documents for it (pkgs/pkgs-lib/formats.nix:
# JSON/YAML/TOML values, INI sections of atoms, key=value atoms ...), so
# settings = (pkgs.formats.x { }).type checks values as NixOS would;
# `generate` returns a stub derivation (no file is written). Formats the
# modules name that are not typed here get types.anything.
{
  lib,
  generic,
  mkStub,
}:
let
  inherit (lib) types;

  generate = format: name: _value: mkStub "formats.${format}.generate(${name})";

  jsonValue =
    let
      valueType =
        types.nullOr (
          types.oneOf [
            types.bool
            types.int
            types.float
            types.str
            types.path
            (types.attrsOf valueType)
            (types.listOf valueType)
          ]
        )
        // {
          description = "JSON value";
        };
    in
    valueType;

  tomlValue =
    let
      valueType =
        types.oneOf [
          types.bool
          types.int
          types.float
          types.str
          types.path
          (types.attrsOf valueType)
          (types.listOf valueType)
        ]
        // {
          description = "TOML value";
        };
    in
    valueType;

  atom =
    types.nullOr (
      types.oneOf [
        types.bool
        types.int
        types.float
        types.str
      ]
    )
    // {
      description = "atom (null, bool, int, float or string)";
    };

  atomOrList =
    listsAsDuplicateKeys: listToValue:
    if listsAsDuplicateKeys || listToValue != null then types.either atom (types.listOf atom) else atom;

  format = name: type: {
    inherit type;
    generate = generate name;
    # helpers some formats export (ini's lib.types.atom, lua's mkLuaInline ...)
    lib = {
      types = { inherit atom; };
      mkLuaInline = expr: {
        _type = "lua-inline";
        inherit expr;
      };
      mkRaw = value: {
        _type = "raw";
        inherit value;
      };
    };
  };

  known = {
    json = _: format "json" jsonValue;
    yaml = _: format "yaml" jsonValue;
    yaml_1_1 = _: format "yaml_1_1" jsonValue;
    yaml_1_2 = _: format "yaml_1_2" jsonValue;
    toml = _: format "toml" tomlValue;
    ini =
      {
        listsAsDuplicateKeys ? false,
        listToValue ? null,
        ...
      }:
      format "ini" (types.attrsOf (types.attrsOf (atomOrList listsAsDuplicateKeys listToValue)));
    iniWithGlobalSection =
      {
        listsAsDuplicateKeys ? false,
        listToValue ? null,
        ...
      }:
      format "iniWithGlobalSection" (
        types.submodule {
          options = {
            globalSection = lib.mkOption {
              type = types.attrsOf (atomOrList listsAsDuplicateKeys listToValue);
              default = { };
            };
            sections = lib.mkOption {
              type = types.attrsOf (types.attrsOf (atomOrList listsAsDuplicateKeys listToValue));
              default = { };
            };
          };
        }
      );
    keyValue =
      {
        listsAsDuplicateKeys ? false,
        listToValue ? null,
        ...
      }:
      format "keyValue" (types.attrsOf (atomOrList listsAsDuplicateKeys listToValue));
    gitIni =
      {
        listsAsDuplicateKeys ? false,
        ...
      }:
      format "gitIni" (
        types.attrsOf (
          types.attrsOf (types.either (atomOrList listsAsDuplicateKeys null) (types.attrsOf (atomOrList listsAsDuplicateKeys null)))
        )
      );
  };
in
lib.mapAttrs (name: _: _: format name types.anything) generic // known

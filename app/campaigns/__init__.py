"""Campaign definitions: ``model`` (pure: phases, targets, SKUs, parsed and validated from YAML) and
``store`` (the ``campaigns`` table)."""

"""Lineage of a dbt project: dbt-compatible node selection, the graph, impact analysis, column lineage.

Two structures, each for one job:

* `index.ManifestIndex` holds what dbt's node selector reads for every member of dbt's own graph,
  tests and analyses included, as flat lists of builtins that pickle into the CLI's cache.
* `graph.build_graph` gives the networkx DiGraph the UI draws: resources only, with the tests folded
  into the attributes of the node they test.

The modules, each importing only the ones listed before it: `errors`, `index` (the index and its
cache), `selector_methods` (`tag:`, `path:`, ...), `selector_spec` (selector syntax), `selectors_yml`
(named selectors), `selector` (`select()`), `graph` (the UI graph, impact, `Lineage`). `columns` (column lineage, sqlglot) and
`layout` (drawing positions, networkx) sit beside them.

The selection path (`errors` to `selector`) and `graph` must stay cheap to import: the CLI answers in
well under a second, so networkx is imported only where the UI graph is built, and none of them
imports dbt, pandas, plotly or sqlglot.
"""

"""Scoring service: PDs, grades, reason codes and prices from an export bundle alone.

* ``creditmodel.service.scoring``: the fast in-process scorer (:class:`FastScorer`) and
  :func:`reason_codes_from_bundle`, shared by the HTTP service and batch scoring;
* ``creditmodel.service.app``: the FastAPI application (``create_app``), served by ``creditmodel serve``;
* ``creditmodel.service.batch``: chunked parquet scoring (``creditmodel score``) and ``spark_score``.

Nothing is imported here, so batch and Spark scoring never import the web stack.
"""

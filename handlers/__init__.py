"""The functions the contract names: one module per `x-openapi-router-controller`
(`tasks`, `health`) and the module of `x-bearerInfoFunc` (`security`). Nothing else."""

"""The local emulator: moto plus what moto lacks, and an emulated Databricks Account API."""

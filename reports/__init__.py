"""Hourly analytics (aggregates in the warehouse, published to MongoDB), the chart registry and the report."""

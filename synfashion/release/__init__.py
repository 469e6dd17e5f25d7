"""A release folder becomes validated records: scanning (`scan`), image checks (`imagecheck`), the scan cache."""

from .scan import Rejected, ReleaseLayoutError, ScanConfig, ScanResult, scan_release

__all__ = ["Rejected", "ReleaseLayoutError", "ScanConfig", "ScanResult", "scan_release"]

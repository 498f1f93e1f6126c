/* The dashboard page (GET /): one HTML document with its CSS and JS inline,
 * generated at build time from src/metrics/dashboard.html (embed.py), so
 * the daemon serves it with no files to install and the page loads nothing
 * from anywhere but this daemon's /api/. */
#pragma once

extern const char metrics_dashboard_html[];

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from provenance import apis
from provenance.urls import api_urlpatterns, epcis_urlpatterns

urlpatterns = [
    path("admin/", admin.site.urls),
    path("epcis/", include(epcis_urlpatterns)),
    path("api/", include(api_urlpatterns)),
    path("api/", include("anomaly.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("healthz", apis.HealthApi.as_view(), name="healthz"),
    path("", include("anomaly.urls")),
]

handler404 = "provenance.apis.not_found"
handler500 = "provenance.apis.server_error"

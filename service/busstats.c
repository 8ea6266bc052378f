/* busstats.c: reading dbus-daemon's GetConnectionStats (busstats.h). */
#include "busstats.h"

#include <string.h>

bool busstats_unavailable(const sd_bus_error *e) {
        return sd_bus_error_has_names(e, SD_BUS_ERROR_UNKNOWN_METHOD, SD_BUS_ERROR_UNKNOWN_INTERFACE,
                                      SD_BUS_ERROR_FAILED, SD_BUS_ERROR_NOT_SUPPORTED, SD_BUS_ERROR_ACCESS_DENIED);
}

int busstats_read(sd_bus_message *reply, const char *const keys[], uint32_t values[], size_t n) {
        int r;

        for (size_t i = 0; i < n; i++)
                values[i] = UINT32_MAX;
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r > 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                const char *key;
                size_t i = n;

                r = sd_bus_message_read(reply, "s", &key);
                if (r >= 0)
                        for (i = 0; i < n && strcmp(key, keys[i]) != 0; i++)
                                ;
                if (r >= 0 && i < n)
                        r = sd_bus_message_read(reply, "v", "u", &values[i]);
                else if (r >= 0)
                        r = sd_bus_message_skip(reply, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r >= 0)
                        r = 1;
        }
        return r < 0 ? r : 0;
}

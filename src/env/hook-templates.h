/* The lease hook templates, data/hooks/{activate,deactivate}.{sh,csh,fish},
 * embedded at build time (scripts/embed.py); rendered by hooks.c. */
#pragma once

extern const char env_hook_template_activate_sh[];
extern const char env_hook_template_deactivate_sh[];
extern const char env_hook_template_activate_csh[];
extern const char env_hook_template_deactivate_csh[];
extern const char env_hook_template_activate_fish[];
extern const char env_hook_template_deactivate_fish[];

"""Loop-design KPIs (Chasseray et al., section 4.3). Filled by the loop-design issue."""

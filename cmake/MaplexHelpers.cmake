# Declarative helpers so that each folder's CMakeLists.txt lists what it builds, not how.
#
#   maplex_cc_library(NAME store SRCS store.cc HDRS store.h DEPS maplex_proto SQLite::SQLite3)
#   maplex_cc_binary(NAME maplex-server SRCS main.cc DEPS maplex_server)
#   maplex_cc_test(NAME store_test SRCS store_test.cc DEPS maplex_store)
#
# Library targets are named maplex_<NAME>; binaries land in build/bin/.

function(maplex_cc_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;HDRS;DEPS" ${ARGN})
  set(target maplex_${ARG_NAME})
  if(ARG_SRCS)
    add_library(${target} STATIC ${ARG_SRCS} ${ARG_HDRS})
    target_link_libraries(${target} PUBLIC ${ARG_DEPS})
    target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
  else()
    add_library(${target} INTERFACE)
    target_link_libraries(${target} INTERFACE ${ARG_DEPS})
    target_include_directories(${target} INTERFACE ${PROJECT_SOURCE_DIR})
  endif()
endfunction()

function(maplex_cc_binary)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  target_include_directories(${ARG_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
endfunction()

# A GoogleTest binary; each TEST becomes one CTest test. LABELS: unit (default),
# integration, e2e, fault. Tests run from the source tree so they find data/.
function(maplex_cc_test)
  cmake_parse_arguments(ARG "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  target_include_directories(${ARG_NAME} PRIVATE ${PROJECT_SOURCE_DIR})
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  gtest_discover_tests(${ARG_NAME}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
               ENVIRONMENT "MAPLEX_BIN_DIR=${CMAKE_BINARY_DIR}/bin;MAPLEX_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
  # `<label>_tests` builds every test of a label, e.g. integration_tests for a sanitizer run.
  foreach(label ${ARG_LABELS})
    if(NOT TARGET ${label}_tests)
      add_custom_target(${label}_tests)
    endif()
    add_dependencies(${label}_tests ${ARG_NAME})
  endforeach()
endfunction()

# DESIGN.md: server/, agent/ and client/ depend on core/, platform/ and proto/, never on each
# other. Fails the configure step when a target defined in folder FROM links, directly or
# through any dependency, a library defined in folder NOT_ON, or when a source under FROM
# includes a header from NOT_ON. Call after both folders were added.
#
#   maplex_enforce_layering(FROM client NOT_ON server)
function(maplex_enforce_layering)
  cmake_parse_arguments(ARG "" "FROM;NOT_ON" "" ${ARGN})
  get_property(from_targets DIRECTORY ${PROJECT_SOURCE_DIR}/${ARG_FROM} PROPERTY BUILDSYSTEM_TARGETS)
  get_property(forbidden DIRECTORY ${PROJECT_SOURCE_DIR}/${ARG_NOT_ON} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(target ${from_targets})
    set(seen)
    set(queue ${target})
    while(queue)
      list(POP_FRONT queue current)
      if(current IN_LIST seen OR NOT TARGET ${current})
        continue()
      endif()
      list(APPEND seen ${current})
      if(current IN_LIST forbidden)
        message(FATAL_ERROR "${ARG_FROM}/ must not depend on ${ARG_NOT_ON}/ (DESIGN.md): "
                            "${target} links ${current}")
      endif()
      set(deps)
      get_target_property(type ${current} TYPE)
      if(NOT type STREQUAL "INTERFACE_LIBRARY")
        get_target_property(direct ${current} LINK_LIBRARIES)
        if(direct)
          list(APPEND deps ${direct})
        endif()
      endif()
      get_target_property(interface ${current} INTERFACE_LINK_LIBRARIES)
      if(interface)
        list(APPEND deps ${interface})
      endif()
      foreach(dep ${deps})
        # $<LINK_ONLY:x> and the like: the target name inside.
        string(REGEX REPLACE "^\\$<[A-Z_]+:(.*)>$" "\\1" dep "${dep}")
        if(NOT dep MATCHES "[$<>]")
          list(APPEND queue ${dep})
        endif()
      endforeach()
    endwhile()
  endforeach()
  file(GLOB_RECURSE sources ${PROJECT_SOURCE_DIR}/${ARG_FROM}/*.cc ${PROJECT_SOURCE_DIR}/${ARG_FROM}/*.h)
  foreach(source ${sources})
    file(STRINGS ${source} includes REGEX "^#include \"${ARG_NOT_ON}/")
    if(includes)
      message(FATAL_ERROR "${ARG_FROM}/ must not depend on ${ARG_NOT_ON}/ (DESIGN.md): "
                          "${source} has ${includes}")
    endif()
  endforeach()
endfunction()
